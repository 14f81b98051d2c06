// Command latchkey runs the Latchkey OpenID Connect provider and manages
// its clients, users, signing keys and database schema.
package main

import (
	"fmt"
	"os"
)

func main() {
	if err := newRootCommand().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "latchkey:", err)
		os.Exit(1)
	}
}
