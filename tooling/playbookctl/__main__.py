from __future__ import annotations

from playbookctl.cli import main

raise SystemExit(main())
