"""Adapters of attacks from other libraries (optional extras), registered on first use of their names.

Each adapter is one module ending in an (unregistered) ``SPEC = AttackSpec(...)`` and exposing
``check_installed()`` (ImportError naming the install command when its library is missing).
:data:`gse_explain.attacks.registry.LAZY_ATTACKS` maps the names to the modules; ``get_attack(name)``
imports the module, calls ``check_installed()`` and registers ``SPEC`` the first time the name is used, so
``--attack adv_lib:fmn``, ``RunConfig(attack="adv_lib:fmn")`` and ``--attacks ...,adv_lib:fmn`` work without
importing the library when it is not used.

Modules (adv-lib 0.2.8, ``make install-adv-lib``): :mod:`.adv_lib_fmn` (FMN, ℓ0 by default),
:mod:`.adv_lib_sigma_zero` (σ-zero, untargeted only), :mod:`.adv_lib_vfga` (VFGA); shared code in
:mod:`.adv_lib_base`.
"""
