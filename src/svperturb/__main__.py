from svperturb.cli import main

raise SystemExit(main())
