"""Exit statuses of the ``kmeanscli`` command, one place for all of them."""

from __future__ import annotations

from enum import IntEnum


class ExitStatus(IntEnum):
    """Process exit codes (documented in the README)."""

    OK = 0
    """Success."""
    FAILURE = 1
    """The work failed: unreadable or corrupt input, unwritable output, refusing to overwrite."""
    USAGE = 2
    """Bad command line: unknown flag, value out of range, flags that do not go together."""
    SOME_FAILED = 3
    """``batch``: some files failed (the others were done; each failure is listed)."""
    NO_WORKERS = 4
    """``batch --scheduler``: the Dask cluster had no worker for ``--worker-wait`` seconds; the
    batch stopped and listed the files not done (the same command finishes them)."""
    SKIPPED_NOT_SMALLER = 98
    """``compress --skip-if-larger``: the output would not be smaller than the input; nothing
    was written."""
    TARGET_NOT_MET = 99
    """A quality target (``--target-psnr``, ``--target-ssim``, ``--max-delta-e``) is not met even
    with 256 colours; ``compress`` wrote nothing."""
    INTERRUPTED = 130
    """Stopped by Ctrl-C (SIGINT); no partial output is left behind."""
    TERMINATED = 143
    """Stopped by SIGTERM (128 + 15, as a shell reports it); handled like Ctrl-C."""
