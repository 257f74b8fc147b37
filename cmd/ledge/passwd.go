package main

import (
	"bufio"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/ledgemq/ledge/auth"
	"golang.org/x/crypto/bcrypt"
)

// runPasswd is "ledge passwd", which writes the users file as
// mosquitto_passwd writes its password file: it adds a user or changes its
// password (hashed with bcrypt), deletes a user, or gives one a token, and
// leaves every other line of the file as it was.
func runPasswd(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ledge passwd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	create := fs.Bool("c", false, "create FILE (it must not exist yet)")
	batch := fs.Bool("b", false, "batch mode: the password is the last argument (the process list shows it: prefer standard input)")
	del := fs.Bool("D", false, "delete USER from FILE")
	token := fs.Bool("token", false, "give USER a new random token, printed once; the file keeps only its digest")
	cost := fs.Int("cost", bcrypt.DefaultCost, "bcrypt cost: each step doubles the time of a check (about 50 ms at 10 on a PC, most of a second on a small ARM board)")
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage: ledge passwd [-c] [-b] [-D] [-token] [-cost N] FILE USER [PASSWORD]

Adds USER to the users file FILE, or changes its password, with the
password hashed with bcrypt; ledge reads the file given with -users and
reloads it on SIGHUP. Without -b the password is asked twice on the
terminal, or read as one line from standard input. The users' rules
(publish, subscribe, groups ...) are written in the same file by hand: see
docs/AUTH.md.

`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	want := 2
	if *batch {
		want = 3
	}
	if fs.NArg() != want || (*batch && (*del || *token)) || (*del && *token) {
		fs.Usage()
		return errors.New("passwd: want FILE USER (and PASSWORD with -b); -D, -token and -b do not go together")
	}
	if *cost < bcrypt.MinCost || *cost > bcrypt.MaxCost {
		return fmt.Errorf("passwd: cost %d out of %d..%d", *cost, bcrypt.MinCost, bcrypt.MaxCost)
	}
	file, user := fs.Arg(0), fs.Arg(1)
	var text []byte
	mode := os.FileMode(0o600)
	switch st, err := os.Stat(file); {
	case *create && err == nil:
		return fmt.Errorf("passwd: %s exists; leave out -c to change it", file)
	case *create:
	case err != nil:
		return fmt.Errorf("passwd: %w (use -c to create the file)", err)
	default:
		mode = st.Mode().Perm()
		if text, err = os.ReadFile(file); err != nil {
			return fmt.Errorf("passwd: %w", err)
		}
	}

	var out []byte
	var err error
	switch {
	case *del:
		var found bool
		out, found, err = auth.DeleteUser(file, text, user)
		if err == nil && !found {
			return fmt.Errorf("passwd: no user %s in %s", user, file)
		}
	case *token:
		var raw [24]byte
		_, _ = rand.Read(raw[:])
		tok := base64.RawURLEncoding.EncodeToString(raw[:])
		if out, err = auth.AddToken(file, text, user, auth.TokenDigest(tok)); err == nil {
			fmt.Fprintf(stdout, "token for %s (shown once; the file keeps its digest):\n%s\n", user, tok)
		}
	default:
		var pw string
		if *batch {
			pw = fs.Arg(2)
		} else if pw, err = readNewPassword(stdin, stderr); err != nil {
			return fmt.Errorf("passwd: %w", err)
		}
		if pw == "" {
			return errors.New("passwd: empty password")
		}
		var hash string
		if hash, err = auth.HashPassword(pw, *cost); err != nil {
			return fmt.Errorf("passwd: %w", err)
		}
		out, err = auth.SetPassword(file, text, user, hash)
	}
	if err != nil {
		return fmt.Errorf("passwd: %w", err)
	}
	return writeAtomic(file, out, mode)
}

// readNewPassword asks for a password twice on a terminal, without echo,
// or reads one line from standard input when it is not a terminal.
func readNewPassword(stdin io.Reader, prompt io.Writer) (string, error) {
	if f, ok := stdin.(*os.File); ok && isTerminal(f) {
		fmt.Fprint(prompt, "Password: ")
		a, err := readSecret(f)
		fmt.Fprintln(prompt)
		if err != nil {
			return "", err
		}
		fmt.Fprint(prompt, "Password again: ")
		b, err := readSecret(f)
		fmt.Fprintln(prompt)
		if err != nil {
			return "", err
		}
		if a != b {
			return "", errors.New("the two passwords differ")
		}
		return a, nil
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && line == "" {
		return "", fmt.Errorf("read the password from standard input: %w", err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// writeAtomic replaces file with data: a reader (the broker on SIGHUP)
// sees the old file or the new one, never half of one.
func writeAtomic(file string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(file), "."+filepath.Base(file)+".*")
	if err != nil {
		return fmt.Errorf("passwd: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("passwd: %w", err)
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("passwd: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("passwd: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("passwd: %w", err)
	}
	if err := os.Rename(tmp.Name(), file); err != nil {
		return fmt.Errorf("passwd: %w", err)
	}
	return nil
}
