"""Dashboard layer: the only package that imports both streamlit and core.

``state`` (every session-state and widget key), ``settings`` (environment),
``cache`` (every cached wrapper around core), ``page`` (a sample page's header
and guards), ``widgets`` (pickers and the progress bar several pages share),
``forms`` (widget groups returning frozen parameter dataclasses),
``file_browser`` (server-side files and their reading options), ``confine`` (every
chosen path kept inside the data folder; paths shown relative to it), ``messages``
(flash and one-sentence errors), ``tables`` (display tables), ``charts``
(Altair builders), ``render`` (slice images, numpy only), ``view3d`` (PyVista
meshes and vtk.js export, no streamlit), the sections of each page
(``samples_view``, ``segment_view``, ``particles_view``, ``compare_view`` and
``sections``), ``exports`` (downloads) and ``startup`` (first-run demo
analysis).  Importing this package imports nothing heavy, so ``view3d`` can run
in a spawned child process.
"""
