"""Scale-out: many workers on one study, on one machine or many.

``workers`` starts and watches local worker processes; ``guard`` is a trial's life under faults
(claim, keep alive, tell unless swept, fail and re-queue); ``heartbeat`` says which worker holds
which trial and when it last beat; ``faults`` handles signals, a lost storage and creation races;
``throughput`` measures trials per second for 1, 2, … workers
(``python -m studies.scaleout.throughput``).
"""
