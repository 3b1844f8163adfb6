"""The `xec` command-line application (installed as the `xec_cli` package)."""
