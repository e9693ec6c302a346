"""Repository tooling, not part of the installed ``emoflow`` package.

Run from a checkout (each module puts the checkout's ``src/`` on the path itself):

``python tools/compare.py A B``         two results folders, table by table (CI: SLURM vs local)
``python tools/envcheck.py``            the conda env files against the code's imports
``python tools/check_envs.py``          each env's pip layer in a clean venv (a CI step)
``python tools/containers.py [--check]`` the Dockerfiles of ``containers/`` from ``envs/``
"""
