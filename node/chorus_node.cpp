// chorus-node: hosts the components a recipe places on another process or machine (--cluster):
// policy replicas, judges and trainers. A node that also hosts environments is a program of your
// own that registers them and calls chorus::node_main (include/chorus/node.hpp).
//
//   chorus-node --cluster cluster.json --name gen-1            # host and port from the file
//   chorus-node --cluster cluster.json --name gen-1 --port 0   # any free port (printed)
//   CHORUS_CLUSTER_SECRET=... chorus-node --name gen-1 --bind 10.0.0.5 --port 7101   # no file
#include <chorus/node.hpp>

int main(int argc, char** argv) {
  return chorus::node_main(argc, argv);
}
