# Runs excel_dump_stages on the public fixture and checks it with ../shared/fixtures/compare.py.
# -DFLAGS="--device=cpu;--model_kernels=torch" adds flags to the dump (the device path on the CPU).
set(FX "${SRC}/../shared/fixtures/public")
if(NOT EXISTS "${FX}/fixture.h5")
  if("$ENV{CI}" STREQUAL "true")
    message(FATAL_ERROR "fixture missing at ${FX} (CI=true: the shared data must be present)")
  endif()
  # CMake before 3.29 cannot set a script's exit status: ctest marks the test skipped by this line
  # (SKIP_REGULAR_EXPRESSION in tests/CMakeLists.txt).
  message("SKIP: ${FX}/fixture.h5 not found")
  return()
endif()
foreach(ckpt clip_tiny.jit.pt clip_tiny.state_dict.pt)
  execute_process(COMMAND ${DUMP} --checkpoint=${FX}/${ckpt} --input=${FX}/fixture.h5 --output=${OUT} ${FLAGS}
                  RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "excel_dump_stages failed with ${ckpt}")
  endif()
  execute_process(COMMAND /usr/bin/python3 ${FX}/../compare.py ${FX}/fixture.h5 ${OUT} --require text,vision,cam,train,infer,metrics
                  RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "compare.py failed for the dump made with ${ckpt}")
  endif()
endforeach()
