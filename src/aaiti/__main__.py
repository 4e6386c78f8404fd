from aaiti.cli import main

raise SystemExit(main())
