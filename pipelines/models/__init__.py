"""Estimators (scikit-learn API), their metrics and evaluation: propensity, recommender, segments."""
