"""personalize: an MLOps platform for e-commerce personalization."""

__version__ = "0.1.0"
