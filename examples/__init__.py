"""Examples of tfgmm, one module each, run from the repository's root:

  python -m examples.tfp_blog --plots plots

Each module's docstring lists its options; `main(argv)` runs it, and the
tests (tests/test_examples*.py) run each in reduced form. The examples are
not part of the installed `tfgmm` package (setup.cfg installs `tfgmm` only):
they run from a clone.
"""
