"""Developer commands behind the Makefile: the local stack and the process plumbing it shares with tests."""
