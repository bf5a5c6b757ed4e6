"""In-repo optical flow: classical Horn-Schunck, Lucas-Kanade and Farneback, a small FlowNetS-style network
trained on the embedded Sintel-layout pairs, and the zero-flow baseline every method must beat."""
