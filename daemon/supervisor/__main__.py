import sys

from daemon.supervisor.service import main

sys.exit(main())
