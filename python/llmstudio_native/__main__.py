"""`python -m llmstudio_native ...` is the same as `llmstudio ...`."""
from .launcher import main

main()
