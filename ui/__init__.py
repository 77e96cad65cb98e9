"""Dashboard layer: the only package that imports both streamlit and core.

``state`` (session-state and widget keys), ``settings`` (environment), ``cache``
(cached wrappers around core), ``widgets`` (widget groups returning frozen
parameter dataclasses), ``charts`` (Altair builders), ``render`` (slice images,
numpy only), ``view3d`` (PyVista meshes and vtk.js export, no streamlit),
``compare_view`` (the sections of the Compare page) and ``startup``
(first-run demo analysis).  Importing this package imports nothing
heavy, so ``view3d`` can run in a spawned child process.
"""
