from emoflow.cli import main

raise SystemExit(main())
