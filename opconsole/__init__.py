"""opconsole: a keyboard-driven console for first-line service-desk operators."""

__version__ = "0.1.0"
