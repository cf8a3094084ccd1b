// LeakSanitizer's suppressions for every test program, compiled in (the tests' environment carries
// UBSan's options already, and a test's ENVIRONMENT holds one variable only: see CMakeLists.txt).
//
// CAF 0.17's middleman can leave its BASP broker behind at exit, with messages still in its mailbox
// and the helper actor it spawns for each node it meets (seen in 1 of 6 runs of a trainer on a node,
// before Runtime::stop_actor_system waited for detached actors; not seen since). Every object of that
// cycle is CAF's, and LeakSanitizer does not report what only suppressed allocations reach, so naming
// the broker's allocation sites covers the cycle (a chorus object leaked on its own is still reported).
extern "C" const char* __lsan_default_suppressions() {
  return "leak:caf::io::basp_broker\n"
         "leak:caf::io::basp::instance\n";
}
