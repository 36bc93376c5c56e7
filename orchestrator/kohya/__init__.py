"""The only package that knows kohya sd-scripts: its arguments, config files, command line, log lines
and file names. Everything outside speaks in our own objects (a rendered run, a problem, an event).
"""
