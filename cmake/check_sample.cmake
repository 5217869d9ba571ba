# SPDX-License-Identifier: MIT
# Fail when the committed sample configuration differs from what the binary
# prints, so the two cannot drift apart.
# Usage: cmake -DBIN=... -DSAMPLE=... -P check_sample.cmake
execute_process(COMMAND ${BIN} --sample-config OUTPUT_VARIABLE out RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${BIN} --sample-config exited ${rc}")
endif()
file(READ "${SAMPLE}" expected)
if(NOT out STREQUAL expected)
  message(FATAL_ERROR "${SAMPLE} is out of date: regenerate it with\n"
                      "  ${BIN} --sample-config > ${SAMPLE}")
endif()
