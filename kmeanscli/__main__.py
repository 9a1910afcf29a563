"""``python -m kmeanscli``: the command-line interface."""

from kmeanscli.cli.main import main

if __name__ == "__main__":
    main()
