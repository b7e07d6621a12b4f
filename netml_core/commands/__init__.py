"""Built-in subcommands of ``netml``, one module each."""
