"""Django's test runner, also writing each test's outcome as JSON to $DROPIN_RESULTS."""

import json
import os
import unittest

from django.test.runner import DiscoverRunner


class RecordingResult(unittest.TextTestResult):
    outcomes = {}

    def _record(self, test, outcome):
        self.outcomes[f"{type(test).__name__}.{test._testMethodName}"] = outcome

    def addSuccess(self, test):
        super().addSuccess(test)
        self._record(test, "ok")

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._record(test, "FAIL")

    def addError(self, test, err):
        super().addError(test, err)
        self._record(test, "ERROR")

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self._record(test, "skipped")


class Runner(DiscoverRunner):
    def get_resultclass(self):
        return RecordingResult

    def suite_result(self, suite, result, **kwargs):
        with open(os.environ["DROPIN_RESULTS"], "w") as out:
            json.dump(RecordingResult.outcomes, out, indent=1, sort_keys=True)
        return super().suite_result(suite, result, **kwargs)
