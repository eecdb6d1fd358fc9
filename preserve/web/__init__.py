"""The web pages (templates, one style sheet) served by `preserve serve`."""
