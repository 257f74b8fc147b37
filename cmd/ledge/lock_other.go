//go:build !unix

package main

// lockDataDir does nothing where flock is not available; ledge's targets
// are Linux, this keeps the command building elsewhere for development.
func lockDataDir(string) (func(), error) { return func() {}, nil }
