from bngraph.cli import main

raise SystemExit(main())
