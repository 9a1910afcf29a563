"""``python -m kmeanscli``: the command-line interface."""

from kmeanscli.cli.app import main

if __name__ == "__main__":
    main()
