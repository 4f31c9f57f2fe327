"""Features: computation (pure), the Feast store wrapper, training sets."""
