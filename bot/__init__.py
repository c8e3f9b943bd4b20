"""The application: composition root, HTTP routes and the command-line interface."""
