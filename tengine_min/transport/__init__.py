"""How a process reaches a server: run one shell command line there and learn its outcome.
`base` has the interface and its errors, `local` runs on this machine, `ssh` on a job host over
ssh. The core's driver and reconciliation use it, and so does the console to read watcher logs."""
