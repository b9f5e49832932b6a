"""Command-line tools for the Triton kernel: a timing sweep and a SASS inspection."""
