"""Pure numpy core: no printing, no CLI, no file I/O."""
