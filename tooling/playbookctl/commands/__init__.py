"""One module per subcommand: `register(subparsers)` plus `run(args, config) -> int`."""
