"""theory-sandbox: minimal JAX transformers checked number by number against analytic predictions."""
__version__ = "0.1.0"
