from bngraph.cli import entry

raise SystemExit(entry())
