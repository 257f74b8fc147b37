//go:build !linux

package main

import "os"

// isTerminal is false where the terminal's echo cannot be turned off here:
// the password is then read as a line from standard input.
func isTerminal(*os.File) bool { return false }

func readSecret(*os.File) (string, error) { return "", nil }
