"""The Typer command-line interface: parsing, calling the library, rendering."""
