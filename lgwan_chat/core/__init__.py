"""The suite's bottom layer: what the Synapse modules, the bots and the operations tools share.

Nothing here imports the rest of the suite (``bots``, ``synapse_modules`` or the
operations modules of ``lgwan_chat``): ``tests/test_layers.py`` checks it.
"""
