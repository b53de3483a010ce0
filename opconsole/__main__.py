"""The `opconsole` command (`python -m opconsole` and the installed script).

Start-up allocates tens of thousands of objects (modules, classes, styles, widgets) and frees almost
none, so garbage collection passes during it find nothing and cost ~15 ms. They are held off until
the console's first frame is on screen (OpconsoleApp.on_mount) or a command starts (cli).
"""

import gc

gc.disable()

from opconsole.cli import main  # noqa: E402

if __name__ == "__main__":
    main()
