"""The built-in models, one spec module each; heavy libraries are imported inside the functions,
so that reading a spec (a DAG file listing the models, ``personalize --help``) stays instant."""
