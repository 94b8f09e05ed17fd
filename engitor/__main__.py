from engitor.cli import main

raise SystemExit(main())
