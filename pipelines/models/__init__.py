"""Estimators (scikit-learn API), metrics and evaluation: propensity, recommender, segments."""
