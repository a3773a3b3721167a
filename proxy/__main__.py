import sys

from proxy.cli.commands import main

sys.exit(main())
