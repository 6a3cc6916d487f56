// Command boohpay is BoohPay's one binary: the API and webhook workers
// (serve), schema migrations, merchant set-up and a local webhook receiver.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// After the first signal starts a graceful stop, a second one gets the
	// default behaviour back: exit now.
	go func() { <-ctx.Done(); stop() }()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "boohpay:", err)
		os.Exit(exitCode(err)) // 2: a usage error; 1: a failure
	}
}
