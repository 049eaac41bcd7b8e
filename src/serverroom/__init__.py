"""serverroom: a self-hosted OpenAI API platform on local models."""

__version__ = "0.1.0"

__all__ = ["__version__"]
