"""dlhw: deep learning from scratch in numpy.

Folders tell the architecture:

* ``dlhw.nn``        reference layers, losses, convolution, recurrent and attention blocks
                     (the functions students write; solution regions carry nbgrader markers)
* ``dlhw.optim``     update rules and learning-rate schedules; ``dlhw.initializers``
* ``dlhw.autodiff``  a small reverse-mode automatic-differentiation engine
* ``dlhw.linear``    assignment 01's linear models; ``dlhw.gradcheck`` numerical gradients
* ``dlhw.models``, ``dlhw.train``, ``dlhw.data``  models, a training loop, data sets
* ``dlhw.checks``    the checks students run and graded test cells call (PyTorch oracles)
* ``dlhw.validation`` argument checking with messages that name the argument and shape

Importing ``dlhw`` itself is cheap: submodules are imported on demand.
"""

__version__ = "0.1.0"
