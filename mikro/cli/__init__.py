"""The command line: click commands, the built-in kubectl verbs, the API client, printers."""
