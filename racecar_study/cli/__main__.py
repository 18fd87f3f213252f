import sys

from racecar_study.cli.main import main

sys.exit(main())
