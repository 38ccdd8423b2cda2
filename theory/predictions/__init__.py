"""Analytic predictions, one module per claim; nothing here trains or reads a trained model."""
