using System.Runtime.CompilerServices;

// Tests reach internal building blocks (e.g. the IBQ autograd function, EMA update steps) directly.
[assembly: InternalsVisibleTo("Snce.Tests")]
